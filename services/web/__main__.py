"""`python -m services.web`: wiring only."""

from __future__ import annotations

from schemas.topics import WEB
from services.common.entry import run_stage_main
from services.web.settings import WebSettings
from services.web.stage import run


def main() -> None:
    run_stage_main(WEB, WebSettings, run)


if __name__ == "__main__":
    main()
