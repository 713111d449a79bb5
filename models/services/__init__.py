"""Write services of the registry (HackSoft style: keyword-only, own their transactions)."""

from models.services.aliases import alias_move
from models.services.conversions import (
    CONVERSION_TARGETS,
    model_version_convert_enqueue,
    model_version_convert_now,
)
from models.services.tokens import api_token_create, api_token_revoke
from models.services.validation import model_version_validate, validation_limits
from models.services.versions import (
    Registration,
    card_for_spec,
    model_family_get_or_create,
    model_version_register,
)

__all__ = [
    "CONVERSION_TARGETS",
    "Registration",
    "alias_move",
    "api_token_create",
    "api_token_revoke",
    "card_for_spec",
    "model_family_get_or_create",
    "model_version_convert_enqueue",
    "model_version_convert_now",
    "model_version_register",
    "model_version_validate",
    "validation_limits",
]
