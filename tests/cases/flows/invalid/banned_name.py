# error: 5 | name | contains an invalid character
from prefect import flow


@flow(name="team/flow")
def banned_name():
    pass
