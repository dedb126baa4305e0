//! Filesystem operations by path: open options, metadata, rename, remove, directories.

use ringloop::fs::{self, File, OpenOptions};

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ringloop-paths-{}-{name}", std::process::id()))
}

#[test]
fn open_options_follow_std_semantics() {
    let path = temp_path("options");
    ringloop::block_on(async {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .unwrap();
        file.write_all_at(b"first".to_vec(), 0).await.0.unwrap();
        file.close().await.unwrap();
        let err = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);

        let appender = OpenOptions::new().append(true).open(&path).await.unwrap();
        // O_APPEND: the offset is ignored, writes land at the end.
        appender.write_all_at(b"+more".to_vec(), 0).await.0.unwrap();
        appender.close().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first+more");

        let err = OpenOptions::new()
            .read(true)
            .truncate(true)
            .open(&path)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        let err = OpenOptions::new().open(&path).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

        let reader = OpenOptions::new().read(true).open(&path).await.unwrap();
        let (res, _) = reader.write_at(b"x".to_vec(), 0).await;
        assert!(res.is_err(), "a read-only file refuses writes");
    });
    std::fs::remove_file(path).unwrap();
}

#[test]
fn metadata_rename_and_remove_go_through_the_ring() {
    let dir = temp_path("dir");
    ringloop::block_on(async {
        fs::create_dir(&dir).await.unwrap();
        assert_eq!(
            fs::create_dir(&dir).await.unwrap_err().kind(),
            std::io::ErrorKind::AlreadyExists
        );
        let meta = fs::metadata(&dir).await.unwrap();
        assert!(meta.is_dir() && !meta.is_file());

        let a = dir.join("a");
        let b = dir.join("b");
        let file = File::create(&a).await.unwrap();
        file.write_all_at(vec![7u8; 1234], 0).await.0.unwrap();
        let meta = file.metadata().await.unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.len(), 1234);
        file.close().await.unwrap();

        fs::rename(&a, &b).await.unwrap();
        assert_eq!(
            fs::metadata(&a).await.unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        assert_eq!(fs::metadata(&b).await.unwrap().len(), 1234);

        assert_eq!(
            fs::remove_dir(&dir).await.unwrap_err().kind(),
            std::io::ErrorKind::DirectoryNotEmpty
        );
        fs::remove_file(&b).await.unwrap();
        assert_eq!(
            fs::remove_file(&b).await.unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        fs::remove_dir(&dir).await.unwrap();
        assert!(!dir.exists());
    });
}
