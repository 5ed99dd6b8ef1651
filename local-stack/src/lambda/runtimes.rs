//! How each runtime's instance is started, the way Lambda starts it: AWS's own runtime
//! interface clients (awslambdaric for Python, aws-lambda-ric for Node), the package's
//! `bootstrap` for OS-only runtimes, or a release binary. `scripts/setup.sh` installs the
//! clients (pinned) into the cache folder; a client that is missing is an error naming it
//! and that command.
//!
//! Deviation: a machine has one Python and one Node, and every declared version runs on it
//! (`python3.13` on Python 3.11 here), said once as a warning at start-up.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::{LocalError, Result};
use crate::model::{Code, FunctionSpec, Runtime};

/// The ESM resolve hook that makes bare imports (`@aws-sdk/client-dynamodb`) fall back to
/// the runtime's own node_modules, as CommonJS does through NODE_PATH and as Lambda's
/// managed runtimes resolve the SDK they bundle.
const NODE_HOOK: &str = include_str!("runtimes/sdk-resolve.mjs");
const NODE_REGISTER: &str = include_str!("runtimes/register.mjs");

/// The runtime clients found on this machine, for the functions a stack runs.
#[derive(Debug, Clone, Default)]
pub struct Runtimes {
    /// The Python of the virtualenv that holds awslambdaric and boto3.
    python: Option<PathBuf>,
    /// `node`, and the folder holding aws-lambda-ric and the AWS SDK for JavaScript v3.
    node: Option<(PathBuf, PathBuf)>,
}

/// What starts one instance.
#[derive(Debug, Clone)]
pub struct Started {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The working directory and `LAMBDA_TASK_ROOT` (Lambda's `/var/task`).
    pub task_root: PathBuf,
    pub env: Vec<(String, String)>,
}

fn python_venv(cache: &Path) -> PathBuf {
    cache.join("lambda-python")
}

fn node_dir(cache: &Path) -> PathBuf {
    cache.join("lambda-node")
}

fn missing(function: &FunctionSpec, what: &str) -> LocalError {
    LocalError::MissingRuntime {
        message: format!(
            "function {} ({}) needs {what}; install it with `scripts/setup.sh`",
            function.logical_id,
            function.code.runtime_id()
        ),
    }
}

impl Runtimes {
    /// Finds what `functions` need under `cache`, or says what is missing. Warns once per
    /// runtime family when declared versions differ from the interpreter that runs them.
    pub fn find<'a>(
        functions: impl IntoIterator<Item = &'a FunctionSpec>,
        cache: &Path,
    ) -> Result<Runtimes> {
        let mut found = Runtimes::default();
        let (mut pythons, mut nodes) = (BTreeSet::new(), BTreeSet::new());
        for f in functions {
            let Code::Package { runtime, .. } = &f.code else {
                continue;
            };
            match runtime {
                Runtime::Python(id) => {
                    let venv = python_venv(cache);
                    let python = venv.join("bin/python");
                    if !python.is_file() || !has_site_package(&venv, "awslambdaric") {
                        return Err(missing(
                            f,
                            &format!(
                                "AWS's Python runtime interface client (awslambdaric) with boto3 in {}",
                                venv.display()
                            ),
                        ));
                    }
                    found.python = Some(python);
                    pythons.insert(id.clone());
                }
                Runtime::Node(id) => {
                    let dir = node_dir(cache);
                    let ric = dir.join("node_modules/aws-lambda-ric/bin/index.mjs");
                    let node = which("node").ok_or_else(|| missing(f, "node on PATH"))?;
                    if !ric.is_file() {
                        return Err(missing(
                            f,
                            &format!(
                                "AWS's Node.js runtime interface client (aws-lambda-ric) in {}",
                                dir.display()
                            ),
                        ));
                    }
                    found.node = Some((node, dir));
                    nodes.insert(id.clone());
                }
                Runtime::Provided(_) => {}
            }
        }
        if let Some(python) = &found.python {
            warn_versions(&pythons, "Python", &version_of(python, "--version"));
        }
        if let Some((node, dir)) = &found.node {
            warn_versions(&nodes, "Node.js", &version_of(node, "--version"));
            write_if_changed(&dir.join("dynamowave/sdk-resolve.mjs"), NODE_HOOK)?;
            write_if_changed(&dir.join("dynamowave/register.mjs"), NODE_REGISTER)?;
        }
        Ok(found)
    }

    /// The program, arguments, task root and runtime environment of one instance.
    pub fn command(&self, code: &Code, binaries_dir: &Path) -> Result<Started, String> {
        let started = match code {
            Code::Binary(binary) => Started {
                program: binaries_dir.join(binary),
                args: Vec::new(),
                task_root: binaries_dir.to_path_buf(),
                env: Vec::new(),
            },
            Code::Package {
                runtime,
                dir,
                handler,
            } => {
                let mut env = vec![("_HANDLER".to_string(), handler.clone())];
                let (program, args) = match runtime {
                    Runtime::Python(id) => {
                        let python = self.python.clone().ok_or("no Python runtime was found")?;
                        env.push(("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{id}")));
                        // Lambda's /var/task is read-only: no __pycache__ in the team's folder.
                        env.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
                        // `-m` puts the working directory (the task root) first on sys.path,
                        // where Lambda puts /var/task.
                        (
                            python,
                            vec!["-m".into(), "awslambdaric".into(), handler.clone()],
                        )
                    }
                    Runtime::Node(id) => {
                        let (node, ric_dir) =
                            self.node.clone().ok_or("no Node.js runtime was found")?;
                        env.push(("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{id}")));
                        // Lambda's NODE_PATH ends with the runtime's modules and /var/task.
                        env.push((
                            "NODE_PATH".into(),
                            format!(
                                "{}:{}",
                                ric_dir.join("node_modules").display(),
                                dir.display()
                            ),
                        ));
                        let register = ric_dir.join("dynamowave/register.mjs");
                        (
                            node,
                            vec![
                                "--import".into(),
                                format!("file://{}", register.display()),
                                ric_dir
                                    .join("node_modules/aws-lambda-ric/bin/index.mjs")
                                    .display()
                                    .to_string(),
                                handler.clone(),
                            ],
                        )
                    }
                    Runtime::Provided(_) => (dir.join("bootstrap"), Vec::new()),
                };
                Started {
                    program,
                    args,
                    task_root: dir.clone(),
                    env,
                }
            }
        };
        Ok(started)
    }
}

/// Checks that every function's code is there before anything starts: binaries in
/// `binaries_dir`, package folders, and an executable `bootstrap` for OS-only runtimes.
pub fn check_code<'a>(
    functions: impl IntoIterator<Item = &'a FunctionSpec>,
    binaries_dir: &Path,
) -> Result<()> {
    let mut missing_binaries = Vec::new();
    for f in functions {
        match &f.code {
            Code::Binary(binary) => {
                if !binaries_dir.join(binary).is_file() {
                    missing_binaries.push(format!("{binary} ({})", f.logical_id));
                }
            }
            Code::Package { runtime, dir, .. } => {
                if !dir.is_dir() {
                    return Err(LocalError::MissingBinary {
                        message: format!(
                            "function {}: its code folder {} does not exist",
                            f.logical_id,
                            dir.display()
                        ),
                    });
                }
                if let Runtime::Provided(id) = runtime
                    && !is_executable(&dir.join("bootstrap"))
                {
                    return Err(LocalError::MissingBinary {
                        message: format!(
                            "function {} ({id}): {} has no executable bootstrap, which OS-only runtimes run",
                            f.logical_id,
                            dir.display()
                        ),
                    });
                }
            }
        }
    }
    if missing_binaries.is_empty() {
        return Ok(());
    }
    Err(LocalError::MissingBinary {
        message: format!(
            "release binaries missing from {}: {}; build them with `cargo build --release -p dynamowave-chat`",
            binaries_dir.display(),
            missing_binaries.join(", ")
        ),
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn has_site_package(venv: &Path, package: &str) -> bool {
    let Ok(libs) = std::fs::read_dir(venv.join("lib")) else {
        return false;
    };
    libs.flatten()
        .any(|lib| lib.path().join("site-packages").join(package).is_dir())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| is_executable(p))
    })
}

fn version_of(program: &Path, flag: &str) -> String {
    std::process::Command::new(program)
        .arg(flag)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text).trim().to_string()
        })
        .unwrap_or_else(|| "an unknown version".into())
}

/// `python3.12` and `Python 3.11.7`: the declared minor version is not the one installed.
fn warn_versions(declared: &BTreeSet<String>, family: &str, installed: &str) {
    let digits = |s: &str| -> String {
        s.chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect()
    };
    let have = digits(installed);
    let differ: Vec<&str> = declared
        .iter()
        .map(String::as_str)
        .filter(|id| {
            let want = digits(id).trim_end_matches('.').to_string();
            // nodejs20.x wants major 20; python3.12 wants 3.12.
            !(have == want || have.starts_with(&format!("{want}.")))
        })
        .collect();
    if !differ.is_empty() {
        tracing::warn!(
            "functions declared {} run on {installed}, the only {family} on this machine (a documented deviation of the local stack)",
            differ.join(", ")
        );
    }
}

fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    let io = |e| LocalError::io(format!("writing {}", path.display()), e);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    // Written aside and renamed, so a stack starting beside this one never reads half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_and_python_commands_follow_lambda() {
        let runtimes = Runtimes {
            python: Some("/c/lambda-python/bin/python".into()),
            node: Some(("/usr/bin/node".into(), "/c/lambda-node".into())),
        };
        let py = Code::Package {
            runtime: Runtime::Python("python3.12".into()),
            dir: "/app/src".into(),
            handler: "app.lambda_handler".into(),
        };
        let s = runtimes.command(&py, Path::new("/bin")).unwrap();
        assert_eq!(s.args, ["-m", "awslambdaric", "app.lambda_handler"]);
        assert_eq!(s.task_root, Path::new("/app/src"));
        assert!(
            s.env
                .contains(&("_HANDLER".into(), "app.lambda_handler".into()))
        );
        assert!(
            s.env
                .contains(&("AWS_EXECUTION_ENV".into(), "AWS_Lambda_python3.12".into()))
        );
        let node = Code::Package {
            runtime: Runtime::Node("nodejs22.x".into()),
            dir: "/app/js".into(),
            handler: "src/index.handler".into(),
        };
        let s = runtimes.command(&node, Path::new("/bin")).unwrap();
        assert_eq!(s.program, Path::new("/usr/bin/node"));
        assert_eq!(s.args.last().map(String::as_str), Some("src/index.handler"));
        assert!(s.env.contains(&(
            "NODE_PATH".into(),
            "/c/lambda-node/node_modules:/app/js".into()
        )));
        let provided = Code::Package {
            runtime: Runtime::Provided("provided.al2023".into()),
            dir: "/app/sh".into(),
            handler: "whatever".into(),
        };
        let s = runtimes.command(&provided, Path::new("/bin")).unwrap();
        assert_eq!(s.program, Path::new("/app/sh/bootstrap"));
        // No Python was found: a Python function cannot start.
        assert!(Runtimes::default().command(&py, Path::new("/bin")).is_err());
    }
}
