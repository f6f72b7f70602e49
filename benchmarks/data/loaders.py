"""Importing this module registers every dataset loader."""

from benchmarks.data import casme2, megc2019, samm, smic
from benchmarks.data.protocols import CASME2_5, MEGC_3, SAMM_5, SMIC_3
from benchmarks.data.registry import DatasetSpec, register_dataset

register_dataset(DatasetSpec("casme2", "CASME II, 5 classes", "raw", casme2.load, CASME2_5.classes,
                             casme2.CITATION, "Cropped/ or CASME2_RAW_selected/ and " + casme2.SHEET))
register_dataset(DatasetSpec("samm", "SAMM, 5 classes", "raw", samm.load, SAMM_5.classes, samm.CITATION,
                             "SAMM/ and " + samm.SHEET))
register_dataset(DatasetSpec("smic", "SMIC-HS, 3 classes", "raw", smic.load, SMIC_3.classes, smic.CITATION,
                             "SMIC_all_cropped/HS/ or HS/"))
register_dataset(DatasetSpec("megc2019", "MEGC2019 composite from the licensed releases", "raw",
                             megc2019.load_raw, MEGC_3.classes, megc2019.CITATION,
                             "the three releases above, plus " + megc2019.GT_CSV))
register_dataset(DatasetSpec("megc2019-public", "MEGC2019 composite, published flow and apex crops", "public",
                             megc2019.load_public, MEGC_3.classes, megc2019.CITATION,
                             f"{megc2019.GT_CSV}, {megc2019.NAMING_CSV}, {megc2019.FLOW_DIR}/, {megc2019.APEX_DIR}/"))
import benchmarks.data.synthetic  # noqa: E402, F401  (registers the synthetic datasets)
