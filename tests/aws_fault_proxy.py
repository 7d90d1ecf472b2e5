"""A loopback proxy in front of a real moto server that answers AWS's documented "not yet" errors first.

moto is instantly consistent; AWS is not. A rule names an action (`ecs:CreateCluster`,
`iam:PutRolePolicy`, `ec2:CreateVpc`) and the error AWS documents for it, and how many of the
action's requests get that error before they are passed on to moto, in each protocol's own shape:
the JSON protocol's `{"__type": CODE, "message": ...}` (ECS) and the query protocol's XML (IAM's
ErrorResponse, EC2's Response/Errors). Everything else is forwarded as it is.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qs

from tests.loopback import LoopbackServer, QuietHandler, forward

# ECS's answer while its service-linked role, made by the first CreateCluster of an account, is not usable yet.
SERVICE_LINKED_ROLE_RACE = ("InvalidParameterException", 400,
                            "Unable to assume the service linked role. Please verify that the ECS service linked role exists.")
# IAM's answer to a call about a role or user made a moment ago, before IAM has it everywhere.
NOT_YET_IN_IAM = ("NoSuchEntity", 404, "The role with name {name} cannot be found.")


@dataclass
class Rule:
    action: str  # service:Operation, e.g. ecs:CreateCluster
    code: str
    status: int
    message: str
    times: int  # requests of the action answered with the error before the next ones pass


class AwsFaultProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.rules: list[Rule] = []
        self.answered = Counter()  # action -> requests answered with an error
        self.actions: list[str] = []  # every action seen, in order
        self._lock = threading.Lock()
        proxy = self

        class Handler(QuietHandler):
            def _forward(self):
                body = self.read_body()
                action, protocol = proxy._action(self.headers, body)
                rule = proxy._take(action)
                if rule is not None:
                    status, content_type, content = proxy._error(rule, protocol)
                    self.answer(status, {"Content-Type": content_type}, content)
                    return
                self.answer(*forward(self.command, proxy.upstream + self.path, body, self.headers, timeout=60))

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        self.server = LoopbackServer(Handler)

    def fail(self, action: str, error: tuple[str, int, str], times: int) -> None:
        """Answer the next `times` requests of `action` with `error` (code, HTTP status, message)."""
        with self._lock:
            self.rules.append(Rule(action, *error, times))

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> AwsFaultProxy:
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    # --- inside -------------------------------------------------------------------------------

    @staticmethod
    def _action(headers, body: bytes) -> tuple[str, str]:
        """The request's service:Operation and protocol ("json" or "query"), from its signature's scope
        and its X-Amz-Target header or Action parameter."""
        scope = re.search(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/", headers.get("Authorization", ""))
        service = scope.group(1) if scope else "?"
        target = headers.get("X-Amz-Target")
        if target:
            return f"{service}:{target.rsplit('.', 1)[1]}", "json"
        action = parse_qs(body.decode(errors="replace")).get("Action", ["?"])[0]
        return f"{service}:{action}", "query"

    def _take(self, action: str) -> Rule | None:
        with self._lock:
            self.actions.append(action)
            for rule in self.rules:
                if rule.action == action and rule.times > 0:
                    rule.times -= 1
                    self.answered[action] += 1
                    return rule
        return None

    @staticmethod
    def _error(rule: Rule, protocol: str) -> tuple[int, str, bytes]:
        request_id = str(uuid.uuid4())
        if protocol == "json":
            body = f'{{"__type": "{rule.code}", "message": "{rule.message}"}}'
            return rule.status, "application/x-amz-json-1.1", body.encode()
        if rule.action.startswith("ec2:"):
            body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{rule.code}</Code>"
                    f"<Message>{rule.message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>")
        else:
            body = (f"<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type>"
                    f"<Code>{rule.code}</Code><Message>{rule.message}</Message></Error><RequestId>{request_id}</RequestId>"
                    "</ErrorResponse>")
        return rule.status, "text/xml", body.encode()
