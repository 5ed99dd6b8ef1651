# SendMessageHandler of the "DynamoWave Chat" design: one scan (no pagination), then a
# sequential post to every connection, the sender included; a failure is printed and
# dropped (no retry, no cleanup of gone connections, no dead-letter queue). Kept as the
# design wrote it, so the harness can measure what these choices cost.
import json
import os

import boto3

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def lambda_handler(event, context):
    ctx = event["requestContext"]
    message = json.loads(event["body"])["message"]
    # The management API lives on the WebSocket API's own domain, as AWS's examples build it.
    api = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=f"https://{ctx['domainName']}/{ctx['stage']}",
    )
    connections = table.scan()["Items"]
    data = json.dumps({"message": message})
    for item in connections:
        try:
            api.post_to_connection(ConnectionId=item["ConnectionID"], Data=data)
        except Exception as e:
            print(f"failed to post to {item['ConnectionID']}: {e}")
    return {"statusCode": 200, "body": "Message sent"}
