# Stub: decorator and signature of the flow in 3commacapital/prefect-flows@59b082be 08_save_benchmark_values.py.
from prefect import flow


@flow(name="08 Save Benchmark values to DB")
def save_benchmark_values():
    pass
