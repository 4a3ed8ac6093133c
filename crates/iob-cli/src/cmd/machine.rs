//! What machine a benchmark ran on, printed before its figures: the CPU's model name, family
//! and model, and how many CPUs this process may use. Figures on shared virtual machines move
//! with the host (the same code measured 474k and 618k events/s on one core in two sessions),
//! so a recorded figure must say where it came from. Reads `/proc/cpuinfo` only; never fails a
//! benchmark.

/// One line describing this machine, e.g. `AMD EPYC (family 26, model 2), 1 of 2 CPUs usable
/// by this process`.
pub fn describe() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    // `available_parallelism` honours the affinity mask (`taskset -c 0` gives 1).
    let usable = std::thread::available_parallelism().map_or(1, |n| n.get());
    describe_from(&cpuinfo, usable)
}

/// [`describe`] from `/proc/cpuinfo` text and the CPUs the process may use.
fn describe_from(cpuinfo: &str, usable: usize) -> String {
    let cpu = cpu_of(cpuinfo).unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let online = (cpuinfo.lines())
        .filter(|l| l.starts_with("processor"))
        .count()
        .max(usable);
    format!("{cpu}, {usable} of {online} CPUs usable by this process")
}

/// The first processor's model name with its family and model, from `/proc/cpuinfo` text.
fn cpu_of(cpuinfo: &str) -> Option<String> {
    let first = cpuinfo.split("\n\n").next()?;
    let field = |name: &str| {
        first.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    };
    let name = field("model name")?;
    Some(match (field("cpu family"), field("model")) {
        (Some(family), Some(model)) => format!("{name} (family {family}, model {model})"),
        _ => name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_CPUS: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\n\nprocessor\t: 1\nmodel name\t: Other\n";

    #[test]
    fn names_the_first_processor_with_its_family_and_model() {
        assert_eq!(
            cpu_of(TWO_CPUS).as_deref(),
            Some("AMD EPYC (family 26, model 2)")
        );
        assert_eq!(
            cpu_of("model name\t: Some CPU\n").as_deref(),
            Some("Some CPU")
        );
        assert_eq!(cpu_of("processor\t: 0\n"), None);
        assert_eq!(cpu_of(""), None);
    }

    #[test]
    fn counts_the_usable_cpus_against_the_listed_ones() {
        assert_eq!(
            describe_from(TWO_CPUS, 1),
            "AMD EPYC (family 26, model 2), 1 of 2 CPUs usable by this process"
        );
        // Without `/proc/cpuinfo`: the architecture, and never fewer CPUs than usable.
        assert_eq!(
            describe_from("", 4),
            format!(
                "{}, 4 of 4 CPUs usable by this process",
                std::env::consts::ARCH
            )
        );
    }
}
