# Stub: decorator and signature of the flow in 3commacapital/prefect-flows@59b082be 02_save_wallet_snapshots.py.
from prefect import flow


@flow(name="02 Get Wallet Snapshots")
def get_wallet_snapshots():
    pass
