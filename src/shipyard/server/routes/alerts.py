"""Alert rules on endpoints' measures, their current state, and every transition they made."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import Field
from sqlalchemy.orm import Session

from shipyard.access.caller import Caller
from shipyard.monitoring import alerts
from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.server.schemas import Body, Out
from shipyard.store.models import AlertRule

router = APIRouter(tags=["alerts"])
RULES = "/namespaces/{namespace}/alert-rules"
RuleName = Annotated[str, Path(min_length=1, max_length=63)]


class AlertRuleIn(Body):
    endpoint: str = Field(min_length=1, max_length=63, description="The endpoint whose monitor's checks are read.")
    measure: str = Field(min_length=1, max_length=255, examples=["drift.count", "drift.feature:age", "latency.p99_ms"])
    operator: str = Field(max_length=2, description="One of >, >=, <, <=.", examples=[">="])
    threshold: float
    for_seconds: float = Field(default=0.0, description="How long the condition must hold before the rule fires.")
    webhook: str | None = Field(default=None, max_length=2048, description="An http(s) URL that is POSTed a JSON document.")
    enabled: bool = True


class AlertRuleOut(Out):
    id: str
    namespace: str
    name: str
    endpoint: str
    measure: str
    operator: str
    threshold: float
    for_seconds: float
    webhook: str | None = Field(description="In full for those who may change the rule; scheme and host for readers.")
    enabled: bool
    state: str = Field(description="inactive, pending or firing.")
    state_since: int
    last_value: float | None
    last_evaluated_at: int | None
    created_at: int
    created_by: str
    updated_at: int


class TransitionOut(Out):
    id: int
    rule: str
    namespace: str
    from_state: str
    to_state: str = Field(description="pending, firing, resolved or inactive.")
    value: float | None
    detail: dict[str, Any]
    notified: str | None = Field(description="The webhook's outcome, where the rule has one.")
    at: int


class AlertsOut(Out):
    rules: list[AlertRuleOut]
    transitions: list[TransitionOut] = Field(description="The namespace's newest transitions, newest first.")


@router.put(RULES + "/{name}", response_model=AlertRuleOut, summary="Create or replace an alert rule")
def put_rule(namespace: str, name: RuleName, body: AlertRuleIn, platform: PlatformDep, caller: CallerDep) -> AlertRuleOut:
    with platform.db.session(write=True) as session:
        rule = alerts.put(session, caller, namespace, name, body.model_dump())
        return _described(session, caller, namespace, [rule])[0]


@router.get(RULES, response_model=list[AlertRuleOut], summary="The namespace's alert rules by name")
def list_rules(namespace: str, platform: PlatformDep, caller: CallerDep) -> list[AlertRuleOut]:
    with platform.db.session() as session:
        return _described(session, caller, namespace, alerts.list_rules(session, caller, namespace))


@router.get(RULES + "/{name}", response_model=AlertRuleOut)
def get_rule(namespace: str, name: RuleName, platform: PlatformDep, caller: CallerDep) -> AlertRuleOut:
    with platform.db.session() as session:
        return _described(session, caller, namespace, [alerts.get(session, caller, namespace, name)])[0]


@router.delete(RULES + "/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an alert rule and its history")
def delete_rule(namespace: str, name: RuleName, platform: PlatformDep, caller: CallerDep) -> Response:
    with platform.db.session(write=True) as session:
        alerts.delete(session, caller, namespace, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(RULES + "/{name}/history", response_model=list[TransitionOut], summary="The rule's transitions, newest first")
def rule_history(
    namespace: str,
    name: RuleName,
    platform: PlatformDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=alerts.MAX_LIST)] = 100,
) -> list[TransitionOut]:
    with platform.db.session() as session:
        found = alerts.history(session, caller, namespace, name, limit=limit)
        return [TransitionOut.model_validate(alerts.describe_transition(t, name)) for t in found]


@router.get("/namespaces/{namespace}/alerts", response_model=AlertsOut, summary="Every rule's state and the newest transitions")
def list_alerts(
    namespace: str,
    platform: PlatformDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=alerts.MAX_LIST)] = 20,
) -> AlertsOut:
    with platform.db.session() as session:
        rules = _described(session, caller, namespace, alerts.list_rules(session, caller, namespace))
        recent = alerts.recent(session, caller, namespace, limit=limit)
        transitions = [TransitionOut.model_validate(alerts.describe_transition(t, rule)) for t, rule in recent]
    return AlertsOut(rules=rules, transitions=transitions)


def _described(session: Session, caller: Caller, namespace: str, rules: list[AlertRule]) -> list[AlertRuleOut]:
    return [AlertRuleOut.model_validate(found) for found in alerts.describe_all(session, caller, namespace, rules)]
