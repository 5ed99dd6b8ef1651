//! The `default` Lambda function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dynamowave_chat::runtime::serve(dynamowave_chat::Function::Default).await
}
