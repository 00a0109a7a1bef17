// Shared by the build scripts of `models` and `server` (each does `include!` of this file), because
// cargo applies link arguments only to the binaries and tests of the package whose build script prints
// them.
//
// Two things a plain tch build gets wrong for us:
// 1. The linker drops libtorch_cuda (nothing references its symbols directly), so CUDA is silently
//    unavailable. `--no-as-needed -ltorch_cuda` keeps it, when the torch install has it.
// 2. The binary cannot find libtorch without LD_LIBRARY_PATH. An rpath to the torch `lib/` fixes that.
//
// torch-sys (links = "tch") tells its direct dependents where libtorch lives via DEP_TCH_LIBTORCH_LIB.

fn link_torch() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib_dir = std::env::var_os("DEP_TCH_LIBTORCH_LIB")
        .map(std::path::PathBuf::from)
        .expect("torch-sys did not report its libtorch directory (DEP_TCH_LIBTORCH_LIB)");
    // Recorded in the binary so `medgemma-x version` and the tests can say which libtorch they use.
    println!("cargo:rustc-env=MEDGEMMA_X_TORCH_LIB_DIR={}", lib_dir.display());
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
}
