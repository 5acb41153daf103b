"""One instance of a multi-instance batch transform job: its share of the input objects through the model.

    python -m emulator.services.sagemaker.transform_worker <instances.json> <rank>

transform.py writes instances.json (the bucket's root, the job's spec, the model's containers as
prepared, each instance's (input, output) objects) and starts one of these per instance. It loads the
model once, as an instance's container does, writes each output object, then ``records`` (how many it
transformed) into its SM_ML_ROOT; a failure's reason goes to ``failure`` there, and the exit code is 1.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from pathlib import Path

from emulator.services.s3.store import LocalS3
from emulator.services.sagemaker.serving import ServedModel, model_predictor
from emulator.services.sagemaker.transform import TransformFailure, transform_objects

log = logging.getLogger("emulator.services.sagemaker.transform_worker")


def main(argv: list[str]) -> int:
    logging.basicConfig(stream=sys.stdout, level=logging.DEBUG, format="%(asctime)s %(levelname)s %(message)s")
    plan = json.loads(Path(argv[0]).read_text())
    rank = int(argv[1])
    root = Path(os.environ.get("SM_ML_ROOT", "."))
    s3 = LocalS3(Path(plan["s3_root"]), plan["region"])
    share = [(uri, out) for uri, out in plan["shares"][rank]]
    log.info("instance %d: %d object(s)", rank + 1, len(share))
    try:
        predictor = model_predictor([ServedModel.from_record(r) for r in plan["served"]], batch=True)
        total = transform_objects(s3, plan["record"], predictor, share, threading.Event(), log)
    except TransformFailure as error:
        (root / "failure").write_text(str(error))
        log.error("%s", error)
        return 1
    except Exception as error:  # a crash fails the job with its reason, as the container's would
        log.exception("transform failed")
        (root / "failure").write_text(f"AlgorithmError: {type(error).__name__}: {error}")
        return 1
    (root / "records").write_text(str(total))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
