# token_client_async.py: python token_client_async.py ws://127.0.0.1:8001/socket/ TOKEN user:5
import asyncio
import json
import sys

from websockets.asyncio.client import connect  # pip install websockets


async def listen(url, token, topic):
    async with connect(url, subprotocols=["realtime.v1"]) as ws:
        await ws.send(json.dumps({"topic": "realtime", "event": "auth", "data": {"token": token}, "ref": "1"}))
        print("auth", await ws.recv(), flush=True)  # who the socket is now: {"user": {"id": 5, ...}}
        await ws.send(json.dumps({"topic": topic, "event": "join", "ref": "2"}))
        print("joined", json.dumps(json.loads(await ws.recv())["data"]), flush=True)
        async for message in ws:
            frame = json.loads(message)
            if frame["topic"] == topic:
                print("push", json.dumps(frame), flush=True)


asyncio.run(listen(*sys.argv[1:4]))
