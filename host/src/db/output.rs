//! One output of a job, in the order the client listed them.

use sea_orm::entity::prelude::*;

use super::status::{OutputState, OutputType};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "outputs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub job_id: String,
    pub position: i32,
    pub key: String,
    pub format: String,
    pub output_type: OutputType,
    /// Where the output is; its API status is [`super::status::output_status`] of the
    /// type and this.
    pub state: OutputState,
    #[sea_orm(column_type = "Text", nullable)]
    pub url: Option<String>,
    /// JSON array, for outputs that produce several files.
    #[sea_orm(column_type = "Text", nullable)]
    pub urls: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub metadata: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::job::Entity",
        from = "Column::JobId",
        to = "super::job::Column::Id",
        on_delete = "Cascade"
    )]
    Job,
}

impl Related<super::job::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Job.def()
    }
}

/// A job's outputs, for `find_with_related` from the jobs' table.
impl Related<Entity> for super::job::Entity {
    fn to() -> RelationDef {
        Relation::Job.def().rev()
    }
}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// A new output row: waiting for its job's worker, nothing produced yet, no id (the
    /// database gives it one).
    pub fn waiting(job_id: impl Into<String>, position: i32, key: impl Into<String>, format: impl Into<String>, output_type: OutputType) -> Self {
        Model {
            id: 0,
            job_id: job_id.into(),
            position,
            key: key.into(),
            format: format.into(),
            output_type,
            state: OutputState::Waiting,
            url: None,
            urls: None,
            metadata: None,
            error: None,
        }
    }

    /// The output's status as the API shows it (`video.encoding`, `image.created`, ...).
    pub fn status(&self) -> String {
        super::status::output_status(self.output_type, self.state)
    }
}
