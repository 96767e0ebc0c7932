"""A client of the server API for any Python program (docs/api.md): standard library only, no Django.
Copy this file into another repository, or import `realtime.api.client` where the package is installed.

    from realtime.api.client import ApiClient, ApiError
    api = ApiClient("https://example.com/realtime/api/", "rtk_...")
    api.notify(5, "invoice_ready", {"invoice": 1234})
    api.publish("chat:lobby", "message", {"text": "Deploy done"}, idempotency_key="deploy-812")  # {"topic", "offset"}
    api.presence("chat:lobby")  # {"topic", "count", "members", "next"}

Each call is one POST; urllib keeps no connection open between calls. An error answer raises ApiError
with its HTTP `status`, `code`, `detail`, the whole `response`, and `retry_after` (seconds, on 429).
"""

import json
import urllib.error
import urllib.request


class ApiError(Exception):
    def __init__(self, status, response, retry_after=None):
        super().__init__(f"{status} {response.get('code')}: {response.get('detail')}")
        self.status, self.response, self.retry_after = status, response, retry_after
        self.code, self.detail = response.get("code"), response.get("detail")


class ApiClient:
    def __init__(self, url, key, timeout=10):
        self.url, self.key, self.timeout = url.rstrip("/") + "/", key, timeout

    def call(self, method, body, idempotency_key=None):
        """POST `body` to the endpoint `method` ("publish", ...): the answer, or ApiError."""
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        request = urllib.request.Request(self.url + method, data=json.dumps(body).encode(), headers=headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as refused:
            try:
                answer = json.load(refused)
            except ValueError:
                answer = {"code": "http_error", "detail": refused.reason}
            retry_after = refused.headers.get("Retry-After")
            raise ApiError(refused.code, answer, float(retry_after) if retry_after else None) from None

    def publish(self, topic, event, data, idempotency_key=None):
        return self.call("publish", {"topic": topic, "event": event, "data": data}, idempotency_key)

    def notify(self, user, event, data):
        return self.call("notify", {"user": user, "event": event, "data": data})

    def broadcast(self, topics, event, data, idempotency_key=None):
        return self.call("broadcast", {"topics": list(topics), "event": event, "data": data}, idempotency_key)

    def presence(self, topic, after=""):
        return self.call("presence", {"topic": topic, "after": after})

    def history(self, topic, before=None, limit=50):
        return self.call("history", {"topic": topic, "before": before, "limit": limit})

    def disconnect(self, user, reason=""):
        return self.call("disconnect", {"user": user, "reason": reason})
