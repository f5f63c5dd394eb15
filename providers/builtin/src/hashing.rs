//! Password hashing with bounded concurrency and reused memory.
//!
//! Each argon2id check needs its full memory cost (19 MiB at the baseline) at once. Run
//! unbounded, a burst of sign-ins takes that many times 19 MiB, and the allocator keeps much
//! of it afterwards. Here a semaphore lets at most `concurrency` checks run at a time, each
//! on a memory area taken from a pool that never holds more areas than there are permits:
//! the memory a burst can take is `concurrency` × the memory cost, and it is the same
//! memory after the burst as during it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

/// The argon2id parameters of new hashes: OWASP's baseline, 19 MiB, 2 iterations, 1 lane.
pub const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;
const OUTPUT_LEN: usize = 32;

/// A stored hash may ask for more memory than new ones (made elsewhere, or by an older
/// setting), up to this; beyond it the hash never verifies rather than take unbounded memory.
const MAX_STORED_KIB: u32 = 4 * MEMORY_KIB;

/// How much password hashing may run at once, and how long a caller waits for a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingLimits {
    /// Checks (or hashes) running at once; at least 1.
    pub concurrency: usize,
    /// How long a caller waits for a free turn before [`Busy`].
    pub wait: Duration,
}

impl HashingLimits {
    /// One turn per CPU, but no more than `memory_mib` allows at the memory cost of a hash;
    /// always at least one.
    pub fn sized(concurrency: usize, memory_mib: u32, wait: Duration) -> HashingLimits {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let wanted = if concurrency == 0 { cpus } else { concurrency };
        let per_hash_mib = (MEMORY_KIB / 1024).max(1);
        let by_memory = usize::try_from(memory_mib / per_hash_mib).unwrap_or(usize::MAX);
        HashingLimits { concurrency: wanted.min(by_memory).max(1), wait }
    }
}

impl Default for HashingLimits {
    fn default() -> Self {
        HashingLimits::sized(0, 256, Duration::from_secs(2))
    }
}

/// Every turn was taken for longer than the caller may wait.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("too many password checks are running; try again shortly")]
pub struct Busy;

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every turn was taken for longer than the caller may wait.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// argon2 refused the input.
    #[error("password hashing failed: {0}")]
    Argon2(String),
    /// The blocking task ended without an answer.
    #[error("password hashing task failed")]
    Task,
}

/// The shared hashing gate: turns, the memory pool and a count of checks made.
#[derive(Debug, Clone)]
pub struct Hashing(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    limits: HashingLimits,
    turns: Arc<Semaphore>,
    /// Memory areas free for the next turn; never more than `limits.concurrency`.
    pool: Mutex<Vec<Vec<Block>>>,
    checks: AtomicU64,
}

impl Hashing {
    /// A gate with these limits.
    pub fn new(limits: HashingLimits) -> Hashing {
        let limits = HashingLimits { concurrency: limits.concurrency.max(1), ..limits };
        Hashing(Arc::new(Inner {
            limits,
            turns: Arc::new(Semaphore::new(limits.concurrency)),
            pool: Mutex::new(Vec::new()),
            checks: AtomicU64::new(0),
        }))
    }

    /// The limits in force.
    pub fn limits(&self) -> HashingLimits {
        self.0.limits
    }

    /// How many password checks have run (decoy checks for unknown names included).
    pub fn checks(&self) -> u64 {
        self.0.checks.load(Ordering::Relaxed)
    }

    /// How many memory areas the pool keeps for the next turns (at most `concurrency`).
    pub fn pooled(&self) -> usize {
        self.0.pool.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Runs `work` on a blocking thread with a pooled memory area, once a turn is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let turns = self.0.turns.clone();
        let permit = tokio::time::timeout(self.0.limits.wait, turns.acquire_owned())
            .await
            .map_err(|_| Busy)?
            // The semaphore is never closed.
            .map_err(|_| HashError::Task)?;
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut memory = inner.take();
            let out = work(&mut memory);
            inner.give_back(memory);
            drop(permit);
            out
        })
        .await
        .map_err(|_| HashError::Task)
    }

    /// Checks a password against a PHC hash; a malformed hash never verifies.
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool, Busy> {
        let (password, hash) = (password.to_owned(), hash.to_owned());
        self.0.checks.fetch_add(1, Ordering::Relaxed);
        match self.run(move |memory| verify_with(password.as_bytes(), &hash, memory)).await {
            Ok(ok) => Ok(ok),
            Err(HashError::Busy(b)) => Err(b),
            Err(_) => Ok(false),
        }
    }

    /// Hashes a password with a random salt, in PHC string format.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = password.to_owned();
        self.run(move |memory| hash_with(password.as_bytes(), memory)).await?
    }
}

impl Inner {
    fn take(&self) -> Vec<Block> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_default()
    }

    fn give_back(&self, mut memory: Vec<Block>) {
        // An area grown for an unusually expensive stored hash is not kept at that size.
        let standard = standard_blocks();
        if memory.len() > standard {
            memory.truncate(standard);
            memory.shrink_to_fit();
        }
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < self.limits.concurrency {
            pool.push(memory);
        }
    }
}

fn params() -> Params {
    Params::new(MEMORY_KIB, ITERATIONS, LANES, Some(OUTPUT_LEN)).unwrap_or_default()
}

fn standard_blocks() -> usize {
    params().block_count()
}

/// Grows `memory` to at least `blocks` blocks.
fn ensure(memory: &mut Vec<Block>, blocks: usize) {
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
}

/// Hashes with the baseline parameters on `memory`.
pub(crate) fn hash_with(password: &[u8], memory: &mut Vec<Block>) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw =
        salt.as_salt().decode_b64(&mut salt_bytes).map_err(|e| HashError::Argon2(e.to_string()))?;
    let params = params();
    let blocks = params.block_count();
    ensure(memory, blocks);
    let mut out = [0u8; OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(password, salt_raw, &mut out, &mut memory[..blocks])
        .map_err(|e| HashError::Argon2(e.to_string()))?;
    let output = Output::new(&out).map_err(|e| HashError::Argon2(e.to_string()))?;
    Ok(format!("$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={LANES}${}${output}", salt.as_str()))
}

/// Checks a password against a PHC hash on `memory`.
pub(crate) fn verify_with(password: &[u8], hash: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    if params.m_cost() > MAX_STORED_KIB {
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    ensure(memory, blocks);
    let mut out = vec![0u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password,
        salt,
        &mut out,
        &mut memory[..blocks],
    );
    // `Output`'s equality is constant-time.
    computed.is_ok() && Output::new(&out).is_ok_and(|o| o == expected)
}
