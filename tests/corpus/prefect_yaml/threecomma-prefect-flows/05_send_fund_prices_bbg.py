# Stub: decorator and signature of the flow in 3commacapital/prefect-flows@59b082be 05_send_fund_prices_bbg.py.
from prefect import flow


@flow(name="05 Send Fund Prices", log_prints=True)
def send_fund_prices_email(signature="3 Comma Capital Funds", day_lag=1):
    pass
