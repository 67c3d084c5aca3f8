use super::*;

/// A fresh SQLite database in a temporary directory (removed when the guard drops).
struct Fresh {
    db: Db,
    dir: std::path::PathBuf,
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn fresh(name: &str) -> Fresh {
    let dir = std::env::temp_dir().join(format!("todo-db-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = Db::open(&format!("sqlite:{}", dir.join("todo.db").display()), 4).unwrap();
    db.migrate().await.unwrap();
    Fresh { db, dir }
}

fn created(signup: Signup) -> User {
    match signup {
        Signup::Created(user) => user,
        Signup::Taken => panic!("name taken"),
    }
}

#[tokio::test]
async fn migrations_are_applied_once_and_wal_is_on() {
    let f = fresh("migrate").await;
    // A second run (another process starting) finds them applied.
    f.db.migrate().await.unwrap();
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM todo_schema")
        .fetch_all(&f.db.pool)
        .await
        .unwrap();
    assert_eq!(versions, vec![1]);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&f.db.pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    // A second pool on the same file (another worker process) sees the schema.
    let again = Db::open(&format!("sqlite:{}", f.dir.join("todo.db").display()), 1).unwrap();
    again.migrate().await.unwrap();
    assert!(again.todos(1).await.unwrap().is_empty());
}

#[tokio::test]
async fn sign_up_hashes_and_log_in_checks() {
    let f = fresh("users").await;
    let alice = created(f.db.sign_up("alice", "correct horse").await.unwrap());
    assert_eq!(
        f.db.sign_up("alice", "another one").await.unwrap(),
        Signup::Taken
    );
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(alice.id)
        .fetch_one(&f.db.pool)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains("correct horse"));
    assert_eq!(
        f.db.log_in("alice", "correct horse").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(f.db.log_in("alice", "wrong horse").await.unwrap(), None);
    assert_eq!(f.db.log_in("bob", "correct horse").await.unwrap(), None);
    assert_eq!(f.db.user(alice.id).await.unwrap(), Some(alice));
    assert_eq!(f.db.user(9999).await.unwrap(), None);
}

#[tokio::test]
async fn todos_belong_to_their_user() {
    let f = fresh("todos").await;
    let alice = created(f.db.sign_up("alice", "password1").await.unwrap()).id;
    let bob = created(f.db.sign_up("bob", "password2").await.unwrap()).id;
    let a1 = f.db.add(alice, "milk").await.unwrap();
    let a2 = f.db.add(alice, "bread").await.unwrap();
    let b1 = f.db.add(bob, "eggs").await.unwrap();
    assert_eq!(
        f.db.todos(alice).await.unwrap(),
        vec![a1.clone(), a2.clone()]
    );
    assert_eq!(f.db.todos(bob).await.unwrap(), vec![b1.clone()]);

    assert!(f.db.rename(alice, a1.id, "oat milk").await.unwrap());
    assert!(!f.db.rename(bob, a1.id, "stolen").await.unwrap());
    assert_eq!(
        f.db.todo(alice, a1.id).await.unwrap().unwrap().title,
        "oat milk"
    );
    assert_eq!(f.db.todo(bob, a1.id).await.unwrap(), None);

    assert!(f.db.toggle(alice, a2.id).await.unwrap().unwrap().done);
    assert!(!f.db.toggle(alice, a2.id).await.unwrap().unwrap().done);
    assert_eq!(f.db.toggle(bob, a2.id).await.unwrap(), None);

    assert_eq!(f.db.delete(bob, a2.id).await.unwrap(), None);
    assert_eq!(
        f.db.delete(alice, a2.id).await.unwrap().unwrap().title,
        "bread"
    );
    assert_eq!(f.db.delete(alice, a2.id).await.unwrap(), None);
    assert_eq!(f.db.todos(alice).await.unwrap().len(), 1);
    // Text round-trips exactly, markup included (escaping is the templates' job).
    let odd = f.db.add(bob, "<b>&\"ünï\"</b>").await.unwrap();
    assert_eq!(
        f.db.todo(bob, odd.id).await.unwrap().unwrap().title,
        "<b>&\"ünï\"</b>"
    );
}

#[tokio::test]
async fn concurrent_writers_lose_nothing() {
    let f = fresh("concurrent").await;
    let user = created(f.db.sign_up("writer", "password1").await.unwrap()).id;
    // Two pools stand for two worker processes on one file.
    let other = Db::open(&format!("sqlite:{}", f.dir.join("todo.db").display()), 4).unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let db = if i % 2 == 0 {
            f.db.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            db.add(user, &format!("item {i}")).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(f.db.todos(user).await.unwrap().len(), 40);
}

#[test]
fn titles_and_credentials_are_checked() {
    assert_eq!(check_title("  milk "), Ok("milk"));
    assert!(check_title("   ").is_err());
    assert!(check_title(&"x".repeat(201)).is_err());
    assert_eq!(check_title(&"é".repeat(200)).map(str::len), Ok(400));
    assert_eq!(check_credentials("alice", "12345678"), Ok("alice"));
    assert!(check_credentials("", "12345678").is_err());
    assert!(check_credentials("a b", "12345678").is_err());
    assert!(check_credentials("alice", "short").is_err());
    assert!(check_credentials(&"a".repeat(41), "12345678").is_err());
    assert!(Backend::of("mysql://x").is_none());
    assert!(matches!(
        Db::open("mysql://x", 1),
        Err(DbError::UnknownUrl(_))
    ));
}
