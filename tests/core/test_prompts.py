"""Prompt templates tell the agent to decide for itself and not to ask: nobody answers it."""

from core.prompts import DEFAULT_TEMPLATE, STANDING_INSTRUCTION, render

VALUES = {"title": "Blue mug", "description": "Holds tea.", "duration_s": 8, "aspect_ratio": "9:16"}


def test_the_default_template_tells_the_agent_to_decide_and_not_to_ask() -> None:
    message = render(DEFAULT_TEMPLATE, VALUES)
    assert "do not ask" in message and "Decide" in message
    assert message.count(STANDING_INSTRUCTION) == 1


def test_a_users_own_template_gets_the_standing_instruction_appended_once() -> None:
    message = render("Make a {duration_s}-second video of {title}.", VALUES)
    assert message == f"Make a 8-second video of Blue mug. {STANDING_INSTRUCTION}"
    already = render("Video of {title}. " + STANDING_INSTRUCTION, VALUES)
    assert already.count(STANDING_INSTRUCTION) == 1
