//! GitHub REST: merged pull requests and deployments (with their statuses) of the configured
//! repos in a time window, following `link: rel="next"` pagination; and the webhook payloads
//! (`pull_request` closed+merged, `deployment_status`) mapped to the same items.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use opslens_domain::{EvidenceType, ExternalEvidence, ExternalItem, SignalKind};
use serde::Deserialize;

use crate::config::GitHubConfig;
use crate::http::{get_json, next_link, ClientError, HttpPolicy, RateStyle};

const SERVICE: &str = "github";
/// Pages followed per list at most, so a huge repo cannot make one sync endless.
const MAX_PAGES: usize = 20;

/// A user reference.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct User {
    /// Login.
    #[serde(default)]
    pub login: String,
}

/// A branch reference of a PR.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct BranchRef {
    /// Branch name.
    #[serde(rename = "ref", default)]
    pub name: String,
}

/// The PR fields OpsLens uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Pull {
    /// PR number.
    pub number: i64,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Link.
    #[serde(default)]
    pub html_url: Option<String>,
    /// Author.
    #[serde(default)]
    pub user: Option<User>,
    /// Last update (merging bumps it: the list is sorted by it).
    pub updated_at: DateTime<Utc>,
    /// When merged; `None` for closed-unmerged.
    #[serde(default)]
    pub merged_at: Option<DateTime<Utc>>,
    /// The merge commit.
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    /// Target branch.
    #[serde(default)]
    pub base: Option<BranchRef>,
}

/// A deployment.
#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    /// Id.
    pub id: i64,
    /// Commit deployed.
    #[serde(default)]
    pub sha: String,
    /// Ref deployed.
    #[serde(rename = "ref", default)]
    pub git_ref: String,
    /// Environment.
    #[serde(default)]
    pub environment: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Who.
    #[serde(default)]
    pub creator: Option<User>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// A deployment status (newest first from the API).
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentStatus {
    /// `success`, `failure`, `in_progress`, …
    pub state: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Log link.
    #[serde(default)]
    pub target_url: Option<String>,
}

/// A GitHub REST client.
#[derive(Debug, Clone)]
pub struct GitHub {
    http: reqwest::Client,
    cfg: GitHubConfig,
    policy: HttpPolicy,
}

impl GitHub {
    /// A client for `cfg` (its `api_url` may point at a local fake).
    pub fn new(cfg: GitHubConfig, policy: HttpPolicy) -> Self {
        GitHub {
            http: crate::http::client(policy.timeout),
            cfg,
            policy,
        }
    }

    /// The configured repos.
    pub fn repos(&self) -> &[String] {
        &self.cfg.repos
    }

    fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.http
            .get(url)
            .bearer_auth(self.cfg.token.expose())
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
    }

    /// Follows `link: rel="next"` from `first`, until `stop` says the rest is too old. Only
    /// URLs on the configured API host are followed (the token must not travel elsewhere).
    async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        first: String,
        stop: impl Fn(&[T]) -> bool,
    ) -> Result<Vec<T>, ClientError> {
        let mut out = Vec::new();
        let mut url = Some(first);
        let mut n = 0;
        while let Some(u) = url.take() {
            let (page, headers) =
                get_json::<Vec<T>>(SERVICE, RateStyle::GitHub, &self.policy, || self.get(&u))
                    .await?;
            let done = page.is_empty() || stop(&page);
            out.extend(page);
            n += 1;
            if done || n >= MAX_PAGES {
                break;
            }
            url = next_link(&headers).filter(|l| l.starts_with(&self.cfg.api_url));
        }
        Ok(out)
    }

    /// Cheapest authenticated call (`GET /rate_limit` does not count against the limit).
    pub async fn check(&self) -> Result<Duration, ClientError> {
        let start = Instant::now();
        let url = format!("{}/rate_limit", self.cfg.api_url);
        let _: (serde_json::Value, _) =
            get_json(SERVICE, RateStyle::GitHub, &self.policy, || self.get(&url)).await?;
        Ok(start.elapsed())
    }

    /// PRs of `repo` merged in `[since, until]`.
    pub async fn merged_pulls(
        &self,
        repo: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Pull>, ClientError> {
        let first = format!(
            "{}/repos/{repo}/pulls?state=closed&sort=updated&direction=desc&per_page=100",
            self.cfg.api_url
        );
        let all = self
            .pages(first, |page: &[Pull]| {
                page.last().is_some_and(|p| p.updated_at < since)
            })
            .await?;
        Ok(all
            .into_iter()
            .filter(|p| p.merged_at.is_some_and(|m| m >= since && m <= until))
            .collect())
    }

    /// Deployments of `repo` created in `[since, until]`, each with its statuses.
    pub async fn deployments(
        &self,
        repo: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<(Deployment, Vec<DeploymentStatus>)>, ClientError> {
        let first = format!("{}/repos/{repo}/deployments?per_page=100", self.cfg.api_url);
        let all = self
            .pages(first, |page: &[Deployment]| {
                page.last().is_some_and(|d| d.created_at < since)
            })
            .await?;
        let mut out = Vec::new();
        for d in all
            .into_iter()
            .filter(|d| d.created_at >= since && d.created_at <= until)
        {
            let url = format!(
                "{}/repos/{repo}/deployments/{}/statuses?per_page=100",
                self.cfg.api_url, d.id
            );
            let statuses = self.pages(url, |_: &[DeploymentStatus]| false).await?;
            out.push((d, statuses));
        }
        Ok(out)
    }
}

/// A merged PR as `deployment` evidence (a change that may have caused an incident).
pub fn pull_item(repo: &str, p: &Pull) -> Option<ExternalItem> {
    let merged = p.merged_at?;
    let author = p.user.as_ref().map(|u| u.login.as_str()).unwrap_or("?");
    let base = p.base.as_ref().map(|b| b.name.as_str()).unwrap_or("?");
    let title = format!("Merged {repo}#{}: {}", p.number, p.title);
    let content = serde_json::json!({
        "repo": repo, "number": p.number, "title": p.title, "author": author, "base": base,
        "merged_at": merged, "merge_commit_sha": p.merge_commit_sha, "url": p.html_url,
    });
    Some(ExternalItem {
        key: format!("github:pr:{repo}#{}", p.number),
        occurred_at: merged,
        message: format!("{title} (by {author} into {base})"),
        signal: SignalKind::Change,
        evidence: Some(ExternalEvidence {
            evidence_type: EvidenceType::Deployment,
            title,
            content: serde_json::to_string_pretty(&content).unwrap_or_default(),
            source: p.html_url.clone().unwrap_or_else(|| SERVICE.into()),
        }),
        // A merge never changes: the first copy (webhook or sync) stays.
        version: None,
    })
}

/// A deployment (with its statuses, newest first) as `deployment` evidence. It counts from the
/// first `success` status (when it went live), else from its creation.
///
/// Keyed by the GitHub deployment id alone, so a `deployment_status` webhook and a REST sync of
/// the same deployment land on one item. Its version is the newest status time, then the
/// number of statuses: a later status replaces the stored copy, and at equal times the sync
/// (which sees every status) wins over a webhook (which carries one).
pub fn deployment_item(repo: &str, d: &Deployment, statuses: &[DeploymentStatus]) -> ExternalItem {
    let live = statuses
        .iter()
        .filter(|s| s.state == "success")
        .map(|s| s.created_at)
        .min()
        .unwrap_or(d.created_at);
    let state = statuses
        .first()
        .map(|s| s.state.as_str())
        .unwrap_or("created");
    let short: String = d.sha.chars().take(7).collect();
    let title = format!("Deploy {repo}@{short} to {} ({state})", d.environment);
    let content = serde_json::json!({
        "repo": repo, "deployment_id": d.id, "sha": d.sha, "ref": d.git_ref,
        "environment": d.environment, "created_at": d.created_at,
        "creator": d.creator.as_ref().map(|u| &u.login), "description": d.description,
        "statuses": statuses.iter().map(|s| serde_json::json!({
            "state": s.state, "created_at": s.created_at, "description": s.description, "target_url": s.target_url,
        })).collect::<Vec<_>>(),
    });
    let newest = statuses
        .iter()
        .map(|s| s.created_at)
        .max()
        .unwrap_or(d.created_at);
    ExternalItem {
        key: deployment_key(repo, d.id),
        occurred_at: live,
        message: title.clone(),
        signal: SignalKind::Change,
        evidence: Some(ExternalEvidence {
            evidence_type: EvidenceType::Deployment,
            title,
            content: serde_json::to_string_pretty(&content).unwrap_or_default(),
            source: SERVICE.into(),
        }),
        version: Some(format!(
            "{}#{:06}",
            newest.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            statuses.len()
        )),
    }
}

/// The one key of a deployment, whichever path (webhook or sync) brings it in.
pub fn deployment_key(repo: &str, id: i64) -> String {
    format!("github:deploy:{repo}:{id}")
}

/// What a GitHub webhook delivery means for OpsLens.
#[derive(Debug, Clone)]
pub enum GitHubEvent {
    /// A merged PR or a deployment status: a change to put on open incidents.
    Change(ExternalItem),
    /// Anything else (closed-unmerged PRs, pings, other events): recorded, ignored.
    Ignored(String),
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct PullEvent {
    action: String,
    pull_request: Pull,
    repository: Repository,
}

#[derive(Deserialize)]
struct DeploymentStatusEvent {
    deployment_status: DeploymentStatus,
    deployment: Deployment,
    repository: Repository,
}

/// Parses a verified delivery by its `X-GitHub-Event` name.
pub fn parse_webhook(event: &str, body: &[u8]) -> Result<GitHubEvent, serde_json::Error> {
    match event {
        "pull_request" => {
            let e: PullEvent = serde_json::from_slice(body)?;
            if e.action == "closed" && e.pull_request.merged_at.is_some() {
                if let Some(item) = pull_item(&e.repository.full_name, &e.pull_request) {
                    return Ok(GitHubEvent::Change(item));
                }
            }
            Ok(GitHubEvent::Ignored(format!(
                "pull_request {} without a merge",
                e.action
            )))
        }
        "deployment_status" => {
            let e: DeploymentStatusEvent = serde_json::from_slice(body)?;
            // Same key as the sync's item; a later status replaces the stored copy (version).
            let item = deployment_item(
                &e.repository.full_name,
                &e.deployment,
                std::slice::from_ref(&e.deployment_status),
            );
            Ok(GitHubEvent::Change(item))
        }
        other => Ok(GitHubEvent::Ignored(format!("event {other} is not used"))),
    }
}
