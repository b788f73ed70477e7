//! One exposition out of several: the Prometheus text format allows each family's `# HELP`
//! and `# TYPE` once, with all its samples together, so the families the five daemons share
//! (each sample labelled with its daemon) are regrouped.

/// The expositions `parts` as one: each family once, in the order families first appear, its
/// samples in the order the parts list them.
pub fn merge<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut families: Vec<Family<'a>> = Vec::new();
    for part in parts {
        let mut current: Option<usize> = None;
        for line in part.lines().filter(|l| !l.trim().is_empty()) {
            let name = family_of(line);
            let index = match (current, name) {
                (Some(index), None) => index,
                (_, Some(name)) => find_or_add(&mut families, name),
                (None, None) => find_or_add(&mut families, sample_name(line)),
            };
            current = Some(index);
            let family = &mut families[index];
            if line.starts_with('#') {
                if !family.comments.iter().any(|c| c == &line) {
                    family.comments.push(line);
                }
            } else {
                family.samples.push(line);
            }
        }
    }
    let mut text = String::new();
    for family in families {
        for line in family.comments.iter().chain(&family.samples) {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// A family's comment lines (once each) and samples.
struct Family<'a> {
    name: &'a str,
    comments: Vec<&'a str>,
    samples: Vec<&'a str>,
}

fn find_or_add<'a>(families: &mut Vec<Family<'a>>, name: &'a str) -> usize {
    if let Some(index) = families.iter().position(|f| f.name == name) {
        return index;
    }
    families.push(Family {
        name,
        comments: Vec::new(),
        samples: Vec::new(),
    });
    families.len() - 1
}

/// The family a `# HELP` or `# TYPE` line starts.
fn family_of(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("# HELP ")
        .or_else(|| line.strip_prefix("# TYPE "))?;
    rest.split_whitespace().next()
}

/// The metric name of a sample line.
fn sample_name(line: &str) -> &str {
    line.split(['{', ' ']).next().unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_families_are_regrouped_and_described_once() {
        let cri = "# HELP crimson_up Up.\n# TYPE crimson_up gauge\ncrimson_up{daemon=\"cri\"} 1\n\
                   # HELP crimson_only_cri X.\n# TYPE crimson_only_cri counter\ncrimson_only_cri_total 3\n";
        let image =
            "# HELP crimson_up Up.\n# TYPE crimson_up gauge\ncrimson_up{daemon=\"image\"} 1\n";
        let merged = merge([cri, image]);
        assert_eq!(
            merged,
            "# HELP crimson_up Up.\n# TYPE crimson_up gauge\ncrimson_up{daemon=\"cri\"} 1\n\
             crimson_up{daemon=\"image\"} 1\n# HELP crimson_only_cri X.\n# TYPE crimson_only_cri counter\n\
             crimson_only_cri_total 3\n"
        );
    }
}
