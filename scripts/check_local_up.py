"""Checks a running `dynamowave local up` from outside our code: Python's websockets as the
WebSocket client and boto3 as the AWS SDK. Usage: check_local_up.py '<first line of local up>'.
Exits 0 and prints "python check: ok" when everything matched."""
import asyncio
import json
import sys

import boto3
import websockets
from botocore.config import Config


async def next_json(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout=30))


async def main(info):
    url = info["websocket_url"]
    session = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name=info["region"]
    )
    config = Config(retries={"max_attempts": 1})
    connections = session.client(
        "apigatewaymanagementapi", endpoint_url=f'{info["endpoint_url"]}/{info["stage"]}', config=config
    )
    lam = session.client("lambda", endpoint_url=info["endpoint_url"], config=config)

    async with websockets.connect(url) as a, websockets.connect(url + "?room=lobby") as b:
        await a.send(json.dumps({"action": "whoami"}))
        a_id = (await next_json(a))["connectionId"]
        await b.send(json.dumps({"action": "whoami"}))
        b_id = (await next_json(b))["connectionId"]

        await a.send(json.dumps({"action": "sendMessage", "message": "hello from python"}))
        frame = await next_json(a)
        assert frame["message"] == "hello from python" and frame["sender"] == a_id, frame

        # boto3 posts to a connection, and gets a typed GoneException for an unknown one.
        connections.post_to_connection(ConnectionId=b_id, Data=b'{"from":"boto3"}')
        assert await next_json(b) == {"from": "boto3"}
        try:
            connections.post_to_connection(ConnectionId="AAAAAAAAAAAAAAA=", Data=b"x")
            raise AssertionError("an unknown connection must be gone")
        except connections.exceptions.GoneException:
            pass
        got = connections.get_connection(ConnectionId=a_id)
    assert got["Identity"]["SourceIp"] == "127.0.0.1", got

    # boto3 sets, reads and removes a function's reserved concurrency.
    fn = info["functions"]["DefaultFunction"]
    lam.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=3)
    assert lam.get_function_concurrency(FunctionName=fn)["ReservedConcurrentExecutions"] == 3
    try:
        lam.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=100000)
        raise AssertionError("an impossible reservation must be refused")
    except lam.exceptions.InvalidParameterValueException:
        pass
    lam.delete_function_concurrency(FunctionName=fn)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=fn)
    print("python check: ok")


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
