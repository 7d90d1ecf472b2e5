# Stub: CSI-Zachary/prefect_deployments holds no flow code; the flow is named `mover` as the file's flow_name says.
from prefect import flow


@flow
def mover():
    pass
