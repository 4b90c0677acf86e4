//! `copra webhooks secret [--rotate]`: the caller's webhook signing secret, read (or
//! replaced) through the API with the caller's key. The secret alone goes to standard
//! output, so a script can take it; notes go to standard error.

use clap::Subcommand;
use serde_json::Value;

use super::Api;

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Print your webhook signing secret (`whsec_...`): verify your webhooks with it.
    Secret {
        /// Replace it with a new one first; the previous one keeps signing beside it
        /// for the server's `webhook_secret_overlap_secs` (24 h by default).
        #[arg(long)]
        rotate: bool,
    },
}

pub async fn webhooks(api: &Api, command: WebhookCommand) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Secret { rotate } => {
            let answer = if rotate {
                // A JSON body, as every request that changes something sends.
                api.send(api.http.post(api.url("/v2/webhooks/secret/rotate")).json(&serde_json::json!({}))).await?
            } else {
                api.send(api.http.get(api.url("/v2/webhooks/secret"))).await?
            };
            let secret = answer.get("secret").and_then(Value::as_str).ok_or_else(|| anyhow::anyhow!("the server answered without a secret"))?;
            println!("{secret}");
            if let Some(until) = answer.get("previous_secret_expires_at").and_then(Value::as_str) {
                eprintln!("the previous secret also signs deliveries until {until}");
            }
            Ok(())
        }
    }
}
