# Stub: decorator and signature of the flow in 3commacapital/prefect-flows@59b082be 01_save_wallet_valuations.py.
from prefect import flow


@flow(name="01 Get Wallet Valuations")
def get_wallet_valuaions():
    pass
