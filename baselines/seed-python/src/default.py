# DefaultHandler of the "DynamoWave Chat" design: tells the client it is connected.
import json

import boto3


def lambda_handler(event, context):
    ctx = event["requestContext"]
    api = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=f"https://{ctx['domainName']}/{ctx['stage']}",
    )
    api.post_to_connection(
        ConnectionId=ctx["connectionId"],
        Data=json.dumps({"message": "You are connected", "connectionId": ctx["connectionId"]}),
    )
    return {"statusCode": 200}
