"""Flow signatures (decorators, parameters, docstrings) as found in public repositories; bodies left out.

Sources, each at the flow it gave:
- PrefectHQ/prefect, tests/test-projects/flows/hello.py
- mhidas/prefect-tutorial, flows/hello_world.py
- anna-geller/pacc-berlin, flows/11_parent_child/parent_child.py
- PrefectHQ/qa-wolf-flows, sleepTaskFlow.py (a markdown docstring)
- acgallagher/Boston-Blue-Bikes, prefect/main_flow.py
- lexyurk/prefect-modal-docker, src/prefect_modal/flows/flow1.py (a model defined next to the flow)
"""

from datetime import date
from typing import Optional

from pydantic import BaseModel

from prefect import flow


# PrefectHQ/prefect tests/test-projects/flows/hello.py
@flow(name="An important name")
def my_flow(number: int, message: Optional[str] = None):
    pass


# mhidas/prefect-tutorial flows/hello_world.py
@flow(log_prints=True)
def hello_world(name: str = "World", goodbye: bool = False):
    pass


# anna-geller/pacc-berlin flows/11_parent_child/parent_child.py (date.today() is evaluated at read time)
@flow(log_prints=True)
def extract(start_date: date = date(2022, 12, 1), end_date: date = date.today()) -> int:
    return 42


# PrefectHQ/qa-wolf-flows sleepTaskFlow.py
@flow(log_prints=True)
def sleep_task_flow(name:str="world", sleepLength:int=10):
    '''### Basic hello world flow
```python
from prefect import flow, task

@flow(log_prints=True)
def basic_flow(name:str="world"):
    print("hello", name)
```
    '''


# acgallagher/Boston-Blue-Bikes prefect/main_flow.py
@flow()
def main_flow(months: list[int], years: list[int]) -> None:
    pass


# lexyurk/prefect-modal-docker src/prefect_modal/flows/flow1.py
class MyModel(BaseModel):
    name: str
    goodbye: bool = False


@flow(log_prints=True, name="test_flow")
def test_flow(args: MyModel):
    pass
