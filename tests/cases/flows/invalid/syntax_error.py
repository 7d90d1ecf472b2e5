# error: 6 |  | the flow file does not parse
from prefect import flow


@flow
def syntax_error(:
    pass
