# token_client.py: python token_client.py ws://127.0.0.1:8001/socket/ TOKEN user:5
import base64
import json
import sys

import websocket  # pip install websocket-client

url, token, topic = sys.argv[1:4]
bearer = "realtime.bearer." + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
ws = websocket.create_connection(url, subprotocols=["realtime.v1", bearer])  # the token rides the offer
ws.send(json.dumps({"topic": topic, "event": "join", "ref": "1"}))
reply = json.loads(ws.recv())
print("joined", json.dumps(reply["data"]), flush=True)  # {"status": "ok", "response": {}}
while True:
    frame = json.loads(ws.recv())
    if frame["topic"] == topic:
        print("push", json.dumps(frame), flush=True)  # what realtime.notify(...) sent
