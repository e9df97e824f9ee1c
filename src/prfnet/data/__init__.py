"""Data readers (CLIC, BAPPS, PieAPP, KADID-10k, PIPAL, TID2013, generic MOS CSV), 2AFC pairs and the
triplet dataset with shared R/A/B augmentation. Formats and label conventions: ``docs/data.md``.

Conventions: ``p_a`` = fraction of judges who found A closer to the reference, in [0, 1]; CLIC ``T = 0``
means A closer; images are float32 RGB in [0, 1].
"""

from .augment import Geometry, center_geometry, item_generator, random_geometry
from .bapps import JNDPair, read_bapps, read_bapps_jnd, read_pieapp
from .clic import ClicOracle, aggregate_votes, read_clic_oracle, read_clic_triplets, write_clic_csv
from .dataset import TripletDataset
from .mos import MosItem, MosSet, mos_pairs, read_kadid, read_mos_csv, read_pipal, read_tid2013
from .triplets import LabeledTriplet, Triplet, majority_label, split_by_reference

__all__ = [
    "JNDPair",
    "ClicOracle",
    "Geometry",
    "LabeledTriplet",
    "MosItem",
    "MosSet",
    "Triplet",
    "TripletDataset",
    "aggregate_votes",
    "center_geometry",
    "item_generator",
    "majority_label",
    "mos_pairs",
    "random_geometry",
    "read_bapps",
    "read_bapps_jnd",
    "read_clic_oracle",
    "read_clic_triplets",
    "read_kadid",
    "read_mos_csv",
    "read_pieapp",
    "read_pipal",
    "read_tid2013",
    "split_by_reference",
    "write_clic_csv",
]
