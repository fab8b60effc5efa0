"""A real WebSocket client (python `websockets`): connect to /ws, POST a
create_task, collect its updates until SUCCESS, then read /status."""
import asyncio
import json
import sys
import urllib.request

import websockets

port, length = int(sys.argv[1]), int(sys.argv[2])
base = f"http://127.0.0.1:{port}"


async def main():
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await ws.send("hello from the test client")
        req = urllib.request.Request(f"{base}/tasks?task_length={length}", method="POST")
        task_id = json.loads(urllib.request.urlopen(req).read())["task_id"]
        updates = []
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if msg.get("task_id") != task_id:
                continue
            updates.append(msg)
            if msg.get("state") in ("SUCCESS", "FAILURE"):
                break
        status = json.loads(urllib.request.urlopen(f"{base}/status/{task_id}").read())
        print("RESULT " + json.dumps({"task_id": task_id, "updates": updates, "status": status}))


asyncio.run(main())
