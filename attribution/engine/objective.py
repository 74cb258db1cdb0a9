"""The scalar explained for each image: softmax probability (default, as the papers) or logit of the target."""
import torch

from ..errors import ConfigError

OBJECTIVES = ("prob", "logit")


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise ConfigError(f"invalid objective={objective!r}: choose one of {list(OBJECTIVES)}")
    return objective


def target_score(logits: torch.Tensor, target: torch.Tensor, objective: str = "prob") -> torch.Tensor:
    """f_y(x): ``softmax(logits)[y]`` for "prob", ``logits[y]`` for "logit"; one value per row."""
    logits = logits.float()
    if objective == "prob":
        return torch.softmax(logits, dim=-1).gather(1, target.view(-1, 1)).squeeze(1)
    if objective == "logit":
        return logits.gather(1, target.view(-1, 1)).squeeze(1)
    raise ConfigError(f"invalid objective={objective!r}: choose one of {list(OBJECTIVES)}")
