# Stub: decorator, signature and docstring of main_flow in Cam0505/CamOnPrefect@075f8e59 pipelines/gsheets_financial.py.
from prefect import flow


@flow(name="gsheets-financial-flow")
def main_flow() -> None:
    """Main pipeline flow"""
