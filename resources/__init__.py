"""Dagster resources: DeepLabCut inference (GPU), the warehouse, the data root and registry."""

from resources.data_root import DataRoot
from resources.inference import DLCInference
from resources.warehouse import WarehouseResource

__all__ = ["DLCInference", "DataRoot", "WarehouseResource"]
