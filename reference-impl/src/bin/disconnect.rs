//! The `disconnect` Lambda function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dynamowave_chat::runtime::serve(dynamowave_chat::Function::Disconnect).await
}
