use crate::support::*;

#[test]
fn first_sync_mirrors_then_second_changes_nothing() {
    let w = World::new();
    w.write("a.txt", "hello");
    w.write("d/e/f.bin", vec![7u8; 100_000]);
    std::os::unix::fs::symlink("a.txt", w.src.join("link")).unwrap();
    std::fs::create_dir_all(w.src.join("empty/inner")).unwrap();
    w.sync(&[]).ok().no_debug_dump();
    assert_mirrored(&w.src, &w.dst);
    let again = w.sync(&[]);
    again.ok().stdout_has("copied 0 files");
    assert_mirrored(&w.src, &w.dst);
}
