"""Wire protocols: Vertex / KServe V1, KServe V2 (Open Inference Protocol), MLflow scoring."""
