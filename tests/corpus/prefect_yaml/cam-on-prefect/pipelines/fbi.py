# Stub: decorator and signature of fbi_flow in Cam0505/CamOnPrefect@075f8e59 pipelines/fbi.py.
from prefect import flow


@flow(name="fbi_flow")
def fbi_flow():
    pass
