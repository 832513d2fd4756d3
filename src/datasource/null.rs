//! `data "null" "NAME" { input = … }`: its output `output` is its input, as in Packer (a way
//! to name a value computed once, or to order evaluation).

use async_trait::async_trait;
use hcl::Value;

use super::{DataSource, Error, Outputs};

/// A `null` data source.
#[derive(Debug, Clone)]
pub struct Null {
    /// `input`: any value.
    pub input: Value,
}

#[async_trait]
impl DataSource for Null {
    async fn read(&self) -> Result<Outputs, Error> {
        let value = Value::Object(hcl::Map::from_iter([(
            "output".to_owned(),
            self.input.clone(),
        )]));
        Ok(Outputs {
            value,
            warnings: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_the_input() {
        let v = super::super::read_blocking(&Null {
            input: Value::from("x"),
        })
        .expect("reads");
        let Value::Object(map) = v.value else {
            panic!("not an object: {v:?}")
        };
        assert_eq!(map.get("output"), Some(&Value::from("x")));
    }
}
