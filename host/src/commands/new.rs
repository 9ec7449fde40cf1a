//! `smartnodes new`: a task project from a template (`host/templates/<language>/`), and the
//! two commands that build and run it.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Arguments of `smartnodes new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The project's name: letters, digits, `-` and `_`, starting with a letter. The
    /// project is created in the folder NAME (which must not exist yet), and builds to
    /// NAME.wasm.
    pub name: String,
    /// The task's language.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
    /// Rust only: the `guest-sdk` folder of a Smartnodes checkout, which the project
    /// depends on by path. Default: the one this binary was built from, if it is still
    /// there.
    #[arg(long, value_name = "PATH")]
    pub sdk: Option<PathBuf>,
    /// Print one JSON object (`dir`, `lang`, `files`, `build`, `run`) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--lang`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust with the `smartnodes-guest` SDK (target wasm32-wasip1).
    Rust,
    /// C with wasi-libc, compiled by `zig cc` (PyPI package `ziglang`).
    C,
    /// Zig (PyPI package `ziglang`).
    Zig,
    /// AssemblyScript with its WASI shim (npm).
    #[value(name = "assemblyscript")]
    AssemblyScript,
}

/// One file of a template: where it goes in the project, and its text with `{{name}}`
/// (and, for Rust, `{{sdk}}`) to fill in.
struct File {
    path: &'static str,
    text: &'static str,
}

macro_rules! template {
    ($($path:literal => $file:literal),* $(,)?) => {
        &[$(File { path: $path, text: include_str!(concat!("../../templates/", $file)) }),*]
    };
}

/// What a language's project is: its files, the command that builds it (run in the
/// project's folder), the module it builds, and what the build needs installed.
struct Template {
    files: &'static [File],
    build: &'static str,
    module: &'static str,
    needs: &'static str,
}

impl Lang {
    fn name(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::C => "C",
            Lang::Zig => "Zig",
            Lang::AssemblyScript => "AssemblyScript",
        }
    }

    fn template(self) -> Template {
        match self {
            Lang::Rust => Template {
                files: template![
                    "Cargo.toml" => "rust/Cargo.toml",
                    "src/main.rs" => "rust/src/main.rs",
                    ".gitignore" => "rust/gitignore",
                ],
                build: "cargo build --release --target wasm32-wasip1",
                module: "target/wasm32-wasip1/release/{{name}}.wasm",
                needs: "Rust and its wasm32-wasip1 target (rustup target add wasm32-wasip1)",
            },
            Lang::C => Template {
                files: template![
                    "main.c" => "c/main.c",
                    ".gitignore" => "c/gitignore",
                ],
                build: "python3 -m ziglang cc --target=wasm32-wasi -O2 -o {{name}}.wasm main.c",
                module: "{{name}}.wasm",
                needs:
                    "zig, whose `zig cc` is clang with wasi-libc (python3 -m pip install ziglang)",
            },
            Lang::Zig => Template {
                files: template![
                    "main.zig" => "zig/main.zig",
                    ".gitignore" => "zig/gitignore",
                ],
                build: "python3 -m ziglang build-exe -target wasm32-wasi -O ReleaseSmall -fstrip \
                        -femit-bin={{name}}.wasm main.zig",
                module: "{{name}}.wasm",
                needs: "zig (python3 -m pip install ziglang)",
            },
            Lang::AssemblyScript => Template {
                files: template![
                    "package.json" => "assemblyscript/package.json",
                    "assembly/index.ts" => "assemblyscript/assembly/index.ts",
                    ".gitignore" => "assemblyscript/gitignore",
                ],
                build: "npm install && npm run build",
                module: "{{name}}.wasm",
                needs: "node and npm (npm install brings AssemblyScript and its WASI shim)",
            },
        }
    }
}

/// Whether `name` can name a project in every language (a Cargo package, a file name).
fn check_name(name: &str) -> Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!(
            "{name:?} is not a project name: use 1 to 64 letters, digits, `-` and `_`, \
             starting with a letter"
        );
    }
    Ok(())
}

/// The guest SDK to depend on: `--sdk`, or this binary's own checkout's.
fn sdk_path(arg: Option<&Path>) -> Result<PathBuf> {
    let (path, from) = match arg {
        Some(p) => (p.to_path_buf(), "--sdk"),
        None => (
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk"),
            "the checkout this binary was built from",
        ),
    };
    let sdk = path
        .canonicalize()
        .ok()
        .filter(|p| p.join("Cargo.toml").is_file());
    sdk.with_context(|| {
        format!(
            "no guest SDK at {} ({from}); pass --sdk PATH, the guest-sdk folder of a \
             Smartnodes checkout",
            path.display()
        )
    })
}

/// Runs the command: creates `./NAME` and prints how to build and run it.
pub fn run(args: NewArgs) -> Result<u8> {
    check_name(&args.name)?;
    if args.sdk.is_some() && args.lang != Lang::Rust {
        bail!("--sdk is for --lang rust only");
    }
    let dir = PathBuf::from(&args.name);
    if dir.exists() {
        bail!("{} exists already", dir.display());
    }
    let sdk = match args.lang {
        Lang::Rust => Some(sdk_path(args.sdk.as_deref())?),
        _ => None,
    };
    let fill = |text: &str| {
        let text = text.replace("{{name}}", &args.name);
        match &sdk {
            // TOML strings take `\` escapes: write the path with `/` (valid on Windows too).
            Some(sdk) => text.replace("{{sdk}}", &sdk.display().to_string().replace('\\', "/")),
            None => text,
        }
    };
    let template = args.lang.template();
    for file in template.files {
        let path = dir.join(file.path);
        let parent = path.parent().expect("a file in the project");
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        std::fs::write(&path, fill(file.text))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let build = format!("cd {} && {}", args.name, fill(template.build));
    let run = format!(
        "echo 'to be or not to be' | smartnodes run {}",
        fill(template.module)
    );
    let files: Vec<&str> = template.files.iter().map(|f| f.path).collect();
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let json = serde_json::json!({
            "dir": args.name,
            "lang": args.lang.name(),
            "files": files,
            "build": build,
            "run": run,
        });
        writeln!(stdout, "{json}")?;
    } else {
        writeln!(
            stdout,
            "Created {} ({} task): {}\n\
             It needs {}. Build it, then run it (it prints `1 6 19`):\n\n    {build}\n    {run}",
            args.name,
            args.lang.name(),
            files.join(", "),
            template.needs,
        )?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        for ok in ["hello", "my-task", "t_2", "A"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "2fast",
            "-x",
            "a b",
            "../x",
            "a/b",
            "é",
            &"x".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_template_names_its_module_and_fills_every_placeholder() {
        for lang in [Lang::Rust, Lang::C, Lang::Zig, Lang::AssemblyScript] {
            let t = lang.template();
            assert!(t.module.ends_with("{{name}}.wasm"));
            for f in t.files {
                let rest = f.text.replace("{{name}}", "").replace("{{sdk}}", "");
                assert!(!rest.contains("{{"), "{}: {}", lang.name(), f.path);
            }
        }
    }
}
