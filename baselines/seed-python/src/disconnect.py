# DisconnectHandler of the "DynamoWave Chat" design.
import os

import boto3

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def lambda_handler(event, context):
    connection_id = event["requestContext"]["connectionId"]
    table.delete_item(Key={"ConnectionID": connection_id})
    return {"statusCode": 200, "body": "Disconnected"}
