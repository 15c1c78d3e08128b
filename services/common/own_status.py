"""A stage's own retained `status/<stage>`, which its replicas share.

Every instance says `online` on connect and `offline` on a clean stop, and
leaves `offline` as its last will, each tagged with its instance id (an MQTT 5
user property). With replicas (e.g. `--scale object-detector=2`) the last word
wins, so when one replica stops or dies the topic would say `offline` while
another still runs. Each instance therefore watches the topic and says
`online` again when another instance says anything else.
"""

from __future__ import annotations

from schemas.service import ONLINE
from schemas.topics import STATUS
from services.common.messages import Received
from services.common.settings import StageSettings
from services.common.stage_client import status_properties


async def ignore(message: Received[bytes]) -> None:
    """The door's route for its own status, when the stage has none: the
    door looks at the message before routing it (`OwnStatus.calls_for_online`)."""


class OwnStatus:
    def __init__(self, settings: StageSettings, user: str, root: str) -> None:
        self.topic = STATUS.topic(root, stage=user)
        self.instance = settings.instance
        self.user_properties = status_properties(settings)

    def calls_for_online(self, raw: bytes, retained: bool, said_by: str | None) -> bool:
        """Whether this message is another instance saying the stage is not
        online. Ignored: a retained copy (from before this connection, which
        announces itself anyway) and this instance's own word (e.g. its last
        run's `offline`, queued in its persistent session)."""
        if retained or said_by == self.instance:
            return False
        return raw.decode("utf-8", "replace").strip() != ONLINE
