// Home: says what this key may do.
import { $, start } from "./common.js";

const WHAT = {
  admin: "As the secretariat you can use every page: find partners for any city, plan and accept clusters, assign experts and explore the network.",
  coordinator: "As a city coordinator you can find partners for your own city and tell the secretariat which ones interest you; the other pages are open to read.",
  analyst: "As an analyst you can read everything: explore the network, see partner suggestions, proposals and accepted clusters. Nothing you do changes the data.",
};

start(async (me) => {
  $("#role-note").textContent = WHAT[me.role] || "";
});
