//! The `connect` Lambda function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dynamowave_chat::runtime::serve(dynamowave_chat::Function::Connect).await
}
