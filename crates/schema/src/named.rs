//! Params and artifact values that are one of a fixed set of names.

/// A value that is one of a fixed set of names, read with an error that
/// lists them (`must be one of lines, trec, sst, found `xml``). Declare one
/// with [`crate::named_enum!`].
pub trait Named: Sized + Copy + PartialEq + 'static {
    const ALL: &'static [(&'static str, Self)];

    fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, v)| *v == self).map(|(n, _)| *n).expect("every variant is listed")
    }

    fn parse(s: &str) -> Result<Self, String> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, v)| *v).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
            format!("must be one of {}, found `{s}`", names.join(", "))
        })
    }
}

/// Declares an enum whose values are names (`kim`, `bucket`): serde reads
/// and writes the names, and a wrong one is an error that lists them.
///
/// ```ignore
/// named_enum! {
///     /// How sentences are padded.
///     pub enum Pad { Kim = "kim", Bucket = "bucket" }
/// }
/// ```
#[macro_export]
macro_rules! named_enum {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $($(#[$vm])* $var),+ }

        impl $crate::Named for $name {
            const ALL: &'static [(&'static str, $name)] = &[$(($s, $name::$var)),+];
        }

        $crate::named_serde!($name);
    };
}

/// Display and serde by name for a type that implements [`Named`] by hand
/// (one with aliases: the first name of a value is the one written).
#[macro_export]
macro_rules! named_serde {
    ($name:ident) => {
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::Named::name(*self))
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str($crate::Named::name(*self))
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                let s = <::std::string::String as ::serde::Deserialize>::deserialize(d)?;
                <$name as $crate::Named>::parse(&s).map_err(::serde::de::Error::custom)
            }
        }
    };
}

/// Text that a params file may write as a string, a number or a boolean
/// (`classes: [0, 1]`, `env: {N: 3}`); it is kept, and written, as a string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Text(pub String);

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Text, E> {
                Ok(Text(s.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Text, E> {
                Ok(Text(n.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Text, E> {
                Ok(Text(n.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Text, E> {
                Ok(Text(serde_json::Value::from(n).to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Text, E> {
                Ok(Text(b.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
