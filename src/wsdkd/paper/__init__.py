"""The paper's Figures 3-4 (DAG stage ``figures``) and its Tables 1-5 as runs (``wsdkd table``): each row a
configuration of the distillation trainer, reusing the DAG's outputs.

May import every step below it; only ``cli`` imports it.
"""
