//! Every WGSL file is valid: naga parses and validates each kernel assembled with its helpers,
//! and every `.wgsl` file in `shaders/` is listed in `flowplay_gpu::kernel::SHADERS`.

use std::collections::BTreeSet;
use std::path::Path;

use flowplay_gpu::kernel::{SHADERS, common};

fn validate(name: &str, source: &str) {
    let module = match naga::front::wgsl::parse_str(source) {
        Ok(module) => module,
        Err(e) => panic!("{name}: {}", e.emit_to_string(source)),
    };
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    );
    if let Err(e) = validator.validate(&module) {
        panic!("{name}: {}", e.emit_to_string(source));
    }
}

#[test]
fn all_wgsl_shaders_are_valid() {
    for shader in SHADERS {
        validate(shader.file, &shader.assemble());
    }
    // Helpers that declare no entry point are valid modules on their own too (the GEMM helper
    // needs its including kernel's functions, so it is only checked through them).
    for (name, source) in common::ALL {
        if name != "common/gemm.wgsl" {
            let with_math = format!("{}\n{source}", common::MATH);
            let source = if name == "common/math.wgsl" {
                source.to_string()
            } else {
                with_math
            };
            validate(name, &source);
        }
    }
}

#[test]
fn every_wgsl_file_is_listed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shaders");
    let mut on_disk = BTreeSet::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("shaders/ is readable") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "wgsl") {
                let rel = path.strip_prefix(&root).expect("under shaders/");
                on_disk.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let listed: BTreeSet<String> = SHADERS
        .iter()
        .map(|s| s.file.to_string())
        .chain(common::ALL.iter().map(|(name, _)| (*name).to_string()))
        .collect();
    assert_eq!(on_disk, listed, "shaders/ and kernel::SHADERS disagree");
}
