# ConnectHandler of the "DynamoWave Chat" design, as the design describes it.
import os
import time

import boto3

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def lambda_handler(event, context):
    connection_id = event["requestContext"]["connectionId"]
    table.put_item(Item={"ConnectionID": connection_id, "Timestamp": int(time.time())})
    return {"statusCode": 200, "body": "Connected"}
