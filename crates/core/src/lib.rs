//! Shared kernel of Hangar. Everything here is pure: no SQL, no HTTP.

pub mod clock;
pub mod error;
pub mod events;
pub mod experiments;
pub mod ids;
pub mod locks;
pub mod metrics;
pub mod pagination;
pub mod rbac;
pub mod tx;
pub mod wire;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::StoreError;
pub use ids::PREBUILDS_SYSTEM_USER_ID;
pub use pagination::Pagination;

/// A string-valued enum: serde names, `as_str`, `Display`, `FromStr`, and `ALL`.
#[macro_export]
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("unknown {} {other:?}", stringify!($name))),
                }
            }
        }
    };
}
