"""boto3 against the local CloudWatch: PutMetricData, GetMetricData, ListMetrics and a typed
error, in whatever protocol this botocore prefers (1.44.8: awsJson 1.0). Prints the protocol
it used and `boto3 check: ok`. Usage: boto3_cloudwatch.py ENDPOINT_URL"""
import datetime
import sys

import boto3
from botocore.exceptions import ClientError

endpoint = sys.argv[1]
cw = boto3.client(
    "cloudwatch",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="AKIDEXAMPLE",
    aws_secret_access_key="secret",
)
seen = []
cw.meta.events.register("before-send", lambda request, **_: seen.append(dict(request.headers)))

now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
minute = now.replace(second=0)
cw.put_metric_data(
    Namespace="DynamoWave/Boto",
    MetricData=[{"MetricName": "Hits", "Dimensions": [{"Name": "Room", "Value": "a"}],
                 "Timestamp": minute, "Values": [1.0, 3.0], "Counts": [2.0, 1.0]}],
)
out = cw.get_metric_data(
    MetricDataQueries=[{"Id": "h", "MetricStat": {"Metric": {"Namespace": "DynamoWave/Boto", "MetricName": "Hits",
                        "Dimensions": [{"Name": "Room", "Value": "a"}]}, "Period": 60, "Stat": "Sum"}}],
    StartTime=minute,
    EndTime=minute + datetime.timedelta(minutes=1),
)
result = out["MetricDataResults"][0]
assert result["Values"] == [5.0], out
assert result["Timestamps"][0] == minute, out
assert result["StatusCode"] == "Complete", out
listed = cw.list_metrics(Namespace="DynamoWave/Boto")["Metrics"]
assert listed == [{"Namespace": "DynamoWave/Boto", "MetricName": "Hits", "Dimensions": [{"Name": "Room", "Value": "a"}]}], listed
try:
    cw.get_metric_data(
        MetricDataQueries=[{"Id": "h", "MetricStat": {"Metric": {"Namespace": "N", "MetricName": "M"}, "Period": 7, "Stat": "Sum"}}],
        StartTime=minute, EndTime=now,
    )
    raise SystemExit("a bad Period was accepted")
except ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidParameterValue", e.response
headers = {k.lower(): v for k, v in seen[0].items()}
print("content-type:", headers.get("content-type"), "x-amz-target:", headers.get("x-amz-target"),
      "x-amzn-query-mode:", headers.get("x-amzn-query-mode"))
print("boto3 check: ok")
