//! A real MQTT broker for the USP tests: Debian's `mosquitto` on a free 127.0.0.1 port with a
//! generated configuration, stopped by its pid when dropped. A missing broker fails the test
//! (scripts/test.sh installs it); it never skips.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Mosquitto {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

fn binary() -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("mosquitto")).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/mosquitto"), PathBuf::from("/usr/bin/mosquitto")]);
    for c in candidates {
        if c.is_file() {
            return c;
        }
    }
    panic!("mosquitto is not installed: the USP broker tests need a real broker (apt-get install mosquitto; scripts/test.sh installs it)");
}

impl Mosquitto {
    /// Starts a broker and waits (bounded) until it accepts connections.
    pub fn start() -> Mosquitto {
        let bin = binary();
        for attempt in 0..5 {
            // A free port: bound and released; another process may take it meanwhile, hence the
            // retries.
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let dir = std::env::temp_dir().join(format!("cpe-sim-mosquitto-{}-{port}-{attempt}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let conf = dir.join("mosquitto.conf");
            // Queues large enough for a 1,000-Agent boot storm into one Controller connection.
            std::fs::write(
                &conf,
                format!(
                    "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\nmax_queued_messages 100000\nmax_inflight_messages 100\nlog_dest stderr\nlog_type error\n"
                ),
            )
            .unwrap();
            let mut child = Command::new(&bin).arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Mosquitto { child, port, dir };
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("mosquitto did not start on a free 127.0.0.1 port (5 attempts)");
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
