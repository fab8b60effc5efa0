"""The Python reference of the frontend, as the tutorial builds it: FastAPI +
uvicorn, a Celery client for POST /tasks, AsyncResult for GET /status/{id}, and
/ws with a connection manager broadcasting Redis `task_status` messages."""
import asyncio
import os

import redis.asyncio as aioredis
from celery import Celery
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
celery = Celery("peer", broker=broker, backend=broker)
app = FastAPI()


class ConnectionManager:
    def __init__(self):
        self.active = []

    async def connect(self, ws):
        await ws.accept()
        self.active.append(ws)

    def disconnect(self, ws):
        if ws in self.active:
            self.active.remove(ws)

    async def broadcast(self, message):
        for ws in list(self.active):
            try:
                await ws.send_text(message)
            except Exception:
                self.disconnect(ws)


manager = ConnectionManager()


@app.on_event("startup")
async def listen():
    async def relay():
        r = aioredis.from_url(broker)
        ps = r.pubsub()
        await ps.subscribe("task_status")
        async for m in ps.listen():
            if m["type"] == "message":
                await manager.broadcast(m["data"].decode())
    app.state.relay = asyncio.create_task(relay())  # keep a reference: asyncio holds tasks weakly


@app.post("/tasks")
def run_task(task_length: int = 5):
    task = celery.send_task("create_task", (task_length,))
    return {"task_id": task.id}


@app.get("/status/{task_id}")
def get_status(task_id: str):
    result = celery.AsyncResult(task_id)
    if result.state == "PENDING":
        return {"status": "Pending..."}
    elif result.state == "SUCCESS":
        return {"status": "Completed", "result": result.result}
    elif result.state == "FAILURE":
        return {"status": "Failed", "result": str(result.result)}
    return {"status": result.state}


@app.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket):
    await manager.connect(websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        manager.disconnect(websocket)
